/**
 * Ref-name validation: whole names follow `git check-ref-format` (so git accepts every ref we
 * write), and single user-supplied components (topics, namespaces, actor names, worker ids) get
 * a stricter allow-list before they are placed into a ref path (docs/decisions/0002).
 *
 * @example
 *   assertRefName('refs/gatos/journal/ops/user/alice');
 *   assertRefComponent('alice', 'actor name');
 */
import { GatosError } from '../errors.js';

/** The rule a name breaks, or undefined when git would accept it. */
export function refNameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (name === '@') return 'is "@"';
  if (name !== 'HEAD' && !name.startsWith('refs/')) return 'does not start with refs/';
  if (name.endsWith('/')) return 'ends with "/"';
  if (name.endsWith('.')) return 'ends with "."';
  if (name.includes('//')) return 'contains "//"';
  if (name.includes('..')) return 'contains ".."';
  if (name.includes('@{')) return 'contains "@{"';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we reject
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(name)) return 'contains a space, a control character or one of ~ ^ : ? * [ \\';
  for (const component of name.split('/')) {
    if (component.startsWith('.')) return `has a component starting with "." (${component})`;
    if (component.endsWith('.lock')) return `has a component ending with ".lock" (${component})`;
  }
  return undefined;
}

export function isValidRefName(name: string): boolean {
  return refNameProblem(name) === undefined;
}

export function assertRefName(name: string): string {
  const problem = refNameProblem(name);
  if (problem) throw new GatosError('invalid_ref_name', `invalid ref name ${JSON.stringify(name)}: ${problem}`, { name, problem });
  return name;
}

/** Validates one user-supplied path component; `what` names it in the error ("topic", ...). */
export function assertRefComponent(part: string, what: string): string {
  let problem: string | undefined;
  if (part === '') problem = 'is empty';
  else if (part.includes('/')) problem = 'contains "/"';
  else if (part.startsWith('-')) problem = 'starts with "-"';
  else if (Buffer.byteLength(part, 'utf8') > 255) problem = 'is longer than 255 bytes';
  else problem = refNameProblem(`refs/${part}`);
  if (problem)
    throw new GatosError('invalid_ref_name', `invalid ${what} ${JSON.stringify(part)}: ${problem}`, { name: part, what, problem });
  return part;
}
