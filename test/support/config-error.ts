import { expect } from 'vitest';
import { ConfigError } from '../../src/config/load.ts';

/** The message of the ConfigError `run` throws; fails the test if it throws nothing or another error. */
export function configFailure(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}
