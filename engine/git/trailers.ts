/**
 * Commit trailers, parsed the way git does (`git interpret-trailers --parse`, `%(trailers)`):
 * the trailer block is the last paragraph of the message, never the title; it counts when all
 * of its lines are trailers, or when a git-generated line (`Signed-off-by: `, `(cherry picked
 * from commit `) is present and trailers make up at least a quarter of it. Lines that start with
 * whitespace continue the trailer above them.
 *
 * @example
 *   parseTrailers('add event\n\nEvent-CID: bafy...\nSig-Alg: ed25519\n')
 *   // -> [{ key: 'Event-CID', value: 'bafy...' }, { key: 'Sig-Alg', value: 'ed25519' }]
 */

export interface Trailer {
  key: string;
  value: string;
}

const GIT_GENERATED_PREFIXES = ['Signed-off-by: ', '(cherry picked from commit '];

/** True for the characters git allows in a trailer token: A-Z, a-z, 0-9 and `-`. */
function isTokenChar(code: number): boolean {
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || code === 45;
}

/** Position of the `:` that ends a trailer token, or -1 (mirrors git's find_separator). */
function separatorIndex(line: string): number {
  let whitespaceFound = false;
  for (let i = 0; i < line.length; i++) {
    const code = line.charCodeAt(i);
    if (code === 58) return i; // ':'
    if (!whitespaceFound && isTokenChar(code)) continue;
    if (i > 0 && (code === 32 || code === 9)) {
      whitespaceFound = true;
      continue;
    }
    return -1;
  }
  return -1;
}

const isBlank = (line: string): boolean => line.trim() === '';
const isContinuation = (line: string): boolean => line.startsWith(' ') || line.startsWith('\t');

/** Index of the first line of the trailer block in `lines`, or -1 when there is none. */
function trailerBlockStart(lines: readonly string[]): number {
  const titleEnd = lines.findIndex(isBlank);
  if (titleEnd === -1) return -1;
  let end = lines.length;
  while (end > titleEnd && isBlank(lines[end - 1] as string)) end--;
  let start = end;
  while (start > titleEnd && !isBlank(lines[start - 1] as string)) start--;
  if (start === end) return -1;

  let trailerLines = 0;
  let nonTrailerLines = 0;
  let pendingContinuations = 0;
  let recognizedPrefix = false;
  for (let i = end - 1; i >= start; i--) {
    const line = lines[i] as string;
    if (line.startsWith('#')) continue;
    if (isContinuation(line)) {
      pendingContinuations++;
      continue;
    }
    if (GIT_GENERATED_PREFIXES.some((prefix) => line.startsWith(prefix))) {
      trailerLines++;
      recognizedPrefix = true;
      pendingContinuations = 0;
    } else if (separatorIndex(line) >= 1) {
      trailerLines++;
      pendingContinuations = 0;
    } else {
      nonTrailerLines += pendingContinuations + 1;
      pendingContinuations = 0;
    }
  }
  nonTrailerLines += pendingContinuations;
  const accepted = (trailerLines > 0 && nonTrailerLines === 0) || (recognizedPrefix && trailerLines * 3 >= nonTrailerLines);
  return accepted ? start : -1;
}

export function parseTrailers(message: string): Trailer[] {
  const lines = message.split('\n');
  const start = trailerBlockStart(lines);
  if (start === -1) return [];
  const trailers: Trailer[] = [];
  for (const line of lines.slice(start)) {
    if (isBlank(line) || line.startsWith('#')) continue;
    const last = trailers[trailers.length - 1];
    if (isContinuation(line) && last) {
      last.value = `${last.value} ${line.trim()}`.trim();
      continue;
    }
    const sep = separatorIndex(line);
    if (sep >= 1) trailers.push({ key: line.slice(0, sep).trim(), value: line.slice(sep + 1).trim() });
  }
  return trailers;
}

/** The value of the last trailer named `key` (case-insensitive, as git matches tokens). */
export function trailerValue(trailers: readonly Trailer[], key: string): string | undefined {
  const wanted = key.toLowerCase();
  for (let i = trailers.length - 1; i >= 0; i--) {
    const trailer = trailers[i] as Trailer;
    if (trailer.key.toLowerCase() === wanted) return trailer.value;
  }
  return undefined;
}

/** Appends a trailer block to a message: `<message>\n\nKey: value\n...`. */
export function withTrailers(message: string, trailers: readonly Trailer[]): string {
  const body = message.replace(/\n+$/, '');
  if (trailers.length === 0) return `${body}\n`;
  for (const { key, value } of trailers) {
    if (separatorIndex(`${key}:`) !== key.length || value.includes('\n')) {
      throw new Error(`invalid trailer ${JSON.stringify(key)}`);
    }
  }
  return `${body}\n\n${trailers.map(({ key, value }) => `${key}: ${value}`).join('\n')}\n`;
}
