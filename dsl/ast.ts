/**
 * Row predicates: the typed AST both filter syntaxes produce, its canonical text and digest.
 * The canonical form flattens nested and/or, keeps operand order (evaluation is pure, so order
 * does not change results, but users recognise their own filter), and writes literals one way,
 * so equal filters give equal digests across machines.
 */
import { contentId } from '../engine/codec/blake3.js';

export type Literal =
  | { type: 'string'; value: string }
  | { type: 'number'; value: string }
  | { type: 'date'; value: string }
  | { type: 'bool'; value: boolean }
  | { type: 'null' };

export type CompareOp = '=' | '!=' | '<' | '<=' | '>' | '>=';

export type Predicate =
  | { kind: 'and'; args: Predicate[] }
  | { kind: 'or'; args: Predicate[] }
  | { kind: 'not'; arg: Predicate }
  | { kind: 'cmp'; path: string[]; op: CompareOp; value: Literal }
  | { kind: 'in'; path: string[]; values: Literal[] };

/** Unix seconds of a (canonical) date literal: midnight UTC for a bare date, a fraction kept. */
export function dateSeconds(value: string): number {
  const whole = Date.parse(value.length === 10 ? `${value}T00:00:00Z` : `${value.slice(0, 19)}Z`) / 1000;
  return value.length > 20 ? whole + Number(`0${value.slice(19, -1)}`) : whole;
}

/** Merges nested ands into ands and ors into ors. */
export function flatten(predicate: Predicate): Predicate {
  switch (predicate.kind) {
    case 'and':
    case 'or': {
      const args = predicate.args
        .map(flatten)
        .flatMap((arg) => (arg.kind === predicate.kind ? (arg as { args: Predicate[] }).args : [arg]));
      return args.length === 1 ? (args[0] as Predicate) : { kind: predicate.kind, args };
    }
    case 'not':
      return { kind: 'not', arg: flatten(predicate.arg) };
    default:
      return predicate;
  }
}

function literalText(literal: Literal): string {
  switch (literal.type) {
    case 'string':
      return JSON.stringify(literal.value);
    case 'number':
    case 'date':
      return literal.value;
    case 'bool':
      return String(literal.value);
    case 'null':
      return 'null';
  }
}

/** The canonical text of a predicate (fully parenthesized where precedence needs it). */
export function canonicalText(predicate: Predicate): string {
  const text = (p: Predicate, parent?: 'and' | 'or' | 'not'): string => {
    switch (p.kind) {
      case 'and':
      case 'or': {
        const inner = p.args.map((arg) => text(arg, p.kind)).join(` ${p.kind} `);
        return parent !== undefined && parent !== p.kind ? `(${inner})` : inner;
      }
      case 'not':
        return `not ${text(p.arg, 'not')}`;
      case 'cmp':
        return `${p.path.join('.')} ${p.op} ${literalText(p.value)}`;
      case 'in':
        return `${p.path.join('.')} in (${p.values.map(literalText).join(', ')})`;
    }
  };
  return text(flatten(predicate));
}

/** `blake3:<hex>` of the canonical text. */
export function predicateDigest(predicate: Predicate): string {
  return contentId(Buffer.from(canonicalText(predicate)));
}

/** The conjuncts of a predicate (itself when it is not an `and`). */
export function conjuncts(predicate: Predicate): Predicate[] {
  const flat = flatten(predicate);
  return flat.kind === 'and' ? flat.args : [flat];
}
