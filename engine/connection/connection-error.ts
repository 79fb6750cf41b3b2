/**
 * A connection the user described cannot be made as described: one sentence (never a password) and what
 * to do about it. The CLI prints it as its one-line error; the library throws it.
 */
export class ConnectionError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    /** The underlying error's code (a SQLSTATE such as 28P01, or ECONNREFUSED), when there was one. */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'ConnectionError';
  }
}
