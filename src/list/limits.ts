// No imports: the browser console's types reach this file (through the admin API's schemas).

/** How many ancestors a subaccount may have; deeper chains (or cycles) are refused, not followed. */
export const MAX_PARENT_DEPTH = 4;
