import { isTesseraSdkError } from '../../src/index.js';

/** What a promise settles to: 'OK', or the code of the TesseraSdkError it rejects with (anything else is rethrown). */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'OK';
  } catch (error) {
    if (isTesseraSdkError(error)) return String(error.code);
    throw error;
  }
}
