// Text files named on the command line (a plan, a role's prompt, a database URL), read as UTF-8
// strictly: a file saved in another encoding is refused, not read with U+FFFD in place of each
// character that does not decode.
import { readFile } from 'node:fs/promises';
import { CliError, EXIT } from './exit-codes.ts';

/**
 * The bytes of the file `option` named, as text. Why strict: the API refuses a body that is not
 * UTF-8, and a lossy read would send what the file does not say (a Latin-1 `é` becomes `�`).
 * A leading byte-order mark is dropped. Throws a USAGE CliError naming the option and the path.
 */
export function decodeUtf8File(bytes: Uint8Array, option: string, path: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new CliError(
      'USAGE',
      `${option} ${path} is not UTF-8 text: save it as UTF-8 and run the command again`,
      EXIT.USAGE,
    );
  }
}

/** Reads the file `option` names as UTF-8 text (decodeUtf8File); an unreadable one is a USAGE error. */
export async function readUtf8File(path: string, option: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new CliError('USAGE', `cannot read ${option} ${path}: ${(error as Error).message}`, EXIT.USAGE);
  }
  return decodeUtf8File(bytes, option, path);
}
