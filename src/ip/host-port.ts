/** A listening or connecting address: a host name or IP literal and a port. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}
