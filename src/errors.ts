// The error for bad user input (a file, a record, a flag): the CLI prints its message without a stack.

export class UserError extends Error {
  override name = 'UserError';
}
