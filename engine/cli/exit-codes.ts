/**
 * pgwarden's exit codes, documented in the README and relied on by the GitHub Action: 3 tells CI to
 * plan again and ask for a new review instead of applying anything.
 */
export const EXIT = {
  ok: 0,
  error: 1,
  /** `plan --detailed-exitcode` (and `health --detailed-exitcode`): there is something to do. */
  changes: 2,
  /** `apply --plan FILE`: the catalog moved since the plan was made; nothing was applied. */
  stalePlan: 3,
} as const;
