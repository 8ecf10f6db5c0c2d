/**
 * The filter language, parsed with Chevrotain:
 *
 *   ns = "gatos/jobs" and ts >= 2025-01-01 and kind in ("add", "sub") and payload.n > 3
 *
 * Comparisons (= != < <= > >=), `in (…)`, `and`, `or`, `not`, parentheses; string, number,
 * date (`YYYY-MM-DD`, optionally `THH:MM:SSZ`), true/false/null literals; dotted paths reach
 * into JSON columns. The ADR's JSON form is accepted too: `{"col": v}` (equality) and
 * `{"col": {"gte": v, "lt": w}}` (ranges), several keys ANDed. Errors carry line and column.
 */
import { createToken, EmbeddedActionsParser, type IParserErrorMessageProvider, type IToken, Lexer, type TokenType } from 'chevrotain';
import { parseJson } from '../engine/codec/canonical-json.js';
import { GatosError } from '../engine/errors.js';
import type { CompareOp, Literal, Predicate } from './ast.js';
import { flatten } from './ast.js';

const Identifier = createToken({ name: 'Identifier', pattern: /[A-Za-z_][A-Za-z0-9_]*/ });
const keyword = (name: string, word: string) => createToken({ name, pattern: new RegExp(`${word}\\b`, 'i'), longer_alt: Identifier });
const And = keyword('And', 'and');
const Or = keyword('Or', 'or');
const Not = keyword('Not', 'not');
const In = keyword('In', 'in');
const True = keyword('True', 'true');
const False = keyword('False', 'false');
const Null = keyword('Null', 'null');
const DateLiteral = createToken({ name: 'DateLiteral', pattern: /\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)?/ });
const NumberLiteral = createToken({ name: 'NumberLiteral', pattern: /-?\d+(?:\.\d+)?/ });
// biome-ignore lint/suspicious/noControlCharactersInRegex: JSON strings exclude raw control characters, as here
const StringLiteral = createToken({ name: 'StringLiteral', pattern: /"(?:[^"\\\u0000-\u001f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/ });
const NotEq = createToken({ name: 'NotEq', pattern: /!=/ });
const Le = createToken({ name: 'Le', pattern: /<=/ });
const Ge = createToken({ name: 'Ge', pattern: />=/ });
const Lt = createToken({ name: 'Lt', pattern: /</ });
const Gt = createToken({ name: 'Gt', pattern: />/ });
const Eq = createToken({ name: 'Eq', pattern: /==?/ });
const LParen = createToken({ name: 'LParen', pattern: /\(/ });
const RParen = createToken({ name: 'RParen', pattern: /\)/ });
const Comma = createToken({ name: 'Comma', pattern: /,/ });
const Dot = createToken({ name: 'Dot', pattern: /\./ });
const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /\s+/, group: Lexer.SKIPPED });

const TOKENS: TokenType[] = [
  WhiteSpace,
  And,
  Or,
  Not,
  In,
  True,
  False,
  Null,
  Identifier,
  DateLiteral,
  NumberLiteral,
  StringLiteral,
  NotEq,
  Le,
  Ge,
  Lt,
  Gt,
  Eq,
  LParen,
  RParen,
  Comma,
  Dot,
];

const lexer = new Lexer(TOKENS, { positionTracking: 'full' });

const OPS: Record<string, CompareOp> = { Eq: '=', NotEq: '!=', Lt: '<', Le: '<=', Gt: '>', Ge: '>=' };

/** How a token reads in an error message. */
const TOKEN_WORDS: Record<string, string> = {
  Identifier: 'a column name',
  StringLiteral: 'a "string"',
  NumberLiteral: 'a number',
  DateLiteral: 'a date (2025-01-01)',
  Eq: '=',
  NotEq: '!=',
  Lt: '<',
  Le: '<=',
  Gt: '>',
  Ge: '>=',
  In: 'in',
  And: 'and',
  Or: 'or',
  Not: 'not',
  True: 'true',
  False: 'false',
  Null: 'null',
  LParen: '(',
  RParen: ')',
  Comma: ',',
  Dot: '.',
};

const wordFor = (type: TokenType) => TOKEN_WORDS[type.name] ?? type.name;
const found = (token: IToken) => (token.tokenType.name === 'EOF' ? 'the end of the filter' : `'${token.image}'`);

/** `expected a, b or c`: the tokens that could come next, each once, in grammar order. */
function expected(types: readonly TokenType[]): string {
  const words = [...new Set(types.map(wordFor))];
  return words.length > 1 ? `${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}` : (words[0] ?? 'more');
}

/** Chevrotain's messages list every alternative path over several lines; users get one line. */
const ERROR_MESSAGES: IParserErrorMessageProvider = {
  buildMismatchTokenMessage: ({ expected: type, actual }) => `expected ${wordFor(type)}, found ${found(actual)}`,
  buildNotAllInputParsedMessage: ({ firstRedundant }) =>
    `unexpected ${found(firstRedundant)} after a complete comparison (join comparisons with and / or)`,
  buildNoViableAltMessage: ({ expectedPathsPerAlt, actual }) =>
    `expected ${expected(expectedPathsPerAlt.flat().flatMap((path) => path.slice(0, 1)))}, found ${found(actual[0] as IToken)}`,
  buildEarlyExitMessage: ({ expectedIterationPaths, actual }) =>
    `expected ${expected(expectedIterationPaths.flatMap((path) => path.slice(0, 1)))}, found ${found(actual[0] as IToken)}`,
};

class FilterParser extends EmbeddedActionsParser {
  constructor() {
    super(TOKENS, { maxLookahead: 2, errorMessageProvider: ERROR_MESSAGES });
    this.performSelfAnalysis();
  }

  public readonly expression = this.RULE('expression', (): Predicate => {
    const args = [this.SUBRULE(this.conjunction)];
    this.MANY(() => {
      this.CONSUME(Or);
      args.push(this.SUBRULE2(this.conjunction));
    });
    return args.length === 1 ? (args[0] as Predicate) : { kind: 'or', args };
  });

  private readonly conjunction = this.RULE('conjunction', (): Predicate => {
    const args = [this.SUBRULE(this.negation)];
    this.MANY(() => {
      this.CONSUME(And);
      args.push(this.SUBRULE2(this.negation));
    });
    return args.length === 1 ? (args[0] as Predicate) : { kind: 'and', args };
  });

  private readonly negation = this.RULE(
    'negation',
    (): Predicate =>
      this.OR([
        {
          ALT: () => {
            this.CONSUME(Not);
            return { kind: 'not', arg: this.SUBRULE(this.negation) } as Predicate;
          },
        },
        { ALT: () => this.SUBRULE(this.primary) },
      ]),
  );

  private readonly primary = this.RULE(
    'primary',
    (): Predicate =>
      this.OR([
        {
          ALT: () => {
            this.CONSUME(LParen);
            const inner = this.SUBRULE(this.expression);
            this.CONSUME(RParen);
            return inner;
          },
        },
        { ALT: () => this.SUBRULE(this.comparison) },
      ]),
  );

  private readonly comparison = this.RULE('comparison', (): Predicate => {
    const path = this.SUBRULE(this.path);
    return this.OR([
      {
        ALT: () => {
          this.CONSUME(In);
          this.CONSUME(LParen);
          const values = [this.SUBRULE(this.literal)];
          this.MANY(() => {
            this.CONSUME(Comma);
            values.push(this.SUBRULE2(this.literal));
          });
          this.CONSUME(RParen);
          return { kind: 'in', path, values } as Predicate;
        },
      },
      {
        ALT: () => {
          const op = this.OR2([
            { ALT: () => this.CONSUME(Eq) },
            { ALT: () => this.CONSUME(NotEq) },
            { ALT: () => this.CONSUME(Le) },
            { ALT: () => this.CONSUME(Ge) },
            { ALT: () => this.CONSUME(Lt) },
            { ALT: () => this.CONSUME(Gt) },
          ]);
          const value = this.SUBRULE3(this.literal);
          return this.ACTION(() => ({ kind: 'cmp', path, op: OPS[op.tokenType.name] as CompareOp, value }) as Predicate);
        },
      },
    ]);
  });

  private readonly path = this.RULE('path', (): string[] => {
    const parts = [this.CONSUME(Identifier).image];
    this.MANY(() => {
      this.CONSUME(Dot);
      parts.push(this.CONSUME2(Identifier).image);
    });
    return parts;
  });

  private readonly literal = this.RULE(
    'literal',
    (): Literal =>
      this.OR([
        {
          ALT: (): Literal => {
            const token = this.CONSUME(StringLiteral);
            return this.ACTION(() => ({ type: 'string', value: JSON.parse(token.image) as string }));
          },
        },
        {
          ALT: (): Literal => {
            const token = this.CONSUME(DateLiteral);
            return this.ACTION(() => ({ type: 'date', value: normalizeDate(token.image) }));
          },
        },
        {
          ALT: (): Literal => {
            const token = this.CONSUME(NumberLiteral);
            return this.ACTION(() => ({ type: 'number', value: normalizeNumber(token.image) }));
          },
        },
        {
          ALT: () => {
            this.CONSUME(True);
            return { type: 'bool', value: true } as Literal;
          },
        },
        {
          ALT: () => {
            this.CONSUME(False);
            return { type: 'bool', value: false } as Literal;
          },
        },
        {
          ALT: () => {
            this.CONSUME(Null);
            return { type: 'null' } as Literal;
          },
        },
      ]),
  );
}

/** `1.50` -> `1.5`, `-0` -> `0`, `007` -> `7`: one spelling per number. */
function normalizeNumber(text: string): string {
  const negative = text.startsWith('-');
  let [whole, fraction = ''] = (negative ? text.slice(1) : text).split('.') as [string, string?];
  whole = whole.replace(/^0+(?=\d)/, '');
  fraction = fraction.replace(/0+$/, '');
  const body = fraction ? `${whole}.${fraction}` : whole;
  return negative && body !== '0' ? `-${body}` : body;
}

const DATE_PARTS = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?Z)?$/;
const DATE_HINT = 'dates are YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC), e.g. ts >= 2025-01-01';

/** A date literal that names no instant (2025-02-30, 24:00:00): found where its token is. */
class NotADate extends Error {
  constructor(readonly image: string) {
    super(`not a date: ${image}`);
  }
}

/**
 * One spelling per instant: the text as written, less trailing zeros of a fraction of a second.
 * The instant must read back as written: `Date.parse` rolls a field out of range over into the
 * next one (2025-02-30 is March 2nd, 24:00:00 the next day).
 */
function normalizeDate(text: string): string {
  const parts = DATE_PARTS.exec(text);
  const whole = parts?.[4] === undefined ? `${text.slice(0, 10)}T00:00:00` : text.slice(0, 19);
  const ms = parts ? Date.parse(`${whole}Z`) : Number.NaN;
  if (Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 19) !== whole) throw new NotADate(text);
  if (parts?.[4] === undefined) return text;
  const fraction = (parts[7] ?? '').replace(/0+$/, '');
  return `${whole}${fraction ? `.${fraction}` : ''}Z`;
}

/** Built on first use: its self-analysis costs ~0.1 s, paid only by processes that parse filters. */
let parser: FilterParser | undefined;

function filterError(text: string, line: number | undefined, column: number | undefined, message: string, hint: string): GatosError {
  return new GatosError(
    'invalid_filter',
    `filter ${JSON.stringify(text)}, line ${line ?? 1}, column ${column ?? 1}: ${message} (hint: ${hint})`,
    {
      line: line ?? 1,
      column: column ?? 1,
      hint,
    },
  );
}

/** Parses the text form. */
export function parseFilterText(text: string): Predicate {
  const lexed = lexer.tokenize(text);
  const bad = lexed.errors[0];
  if (bad)
    throw filterError(
      text,
      bad.line,
      bad.column,
      `unexpected character ${JSON.stringify(text.charAt(bad.offset))}`,
      'strings take double quotes; operators are = != < <= > >= in',
    );
  parser ??= new FilterParser();
  parser.input = lexed.tokens;
  let predicate: Predicate;
  try {
    predicate = parser.expression();
  } catch (err) {
    if (!(err instanceof NotADate)) throw err;
    const token = lexed.tokens.find((t) => t.image === err.image);
    throw filterError(text, token?.startLine, token?.startColumn, err.message, DATE_HINT);
  }
  const error = parser.errors[0];
  if (error) {
    const token = error.token;
    const atEnd = Number.isNaN(token.startColumn ?? Number.NaN);
    const lines = text.split('\n');
    const line = atEnd ? lines.length : token.startLine;
    const column = atEnd ? (lines[lines.length - 1] ?? '').length + 1 : token.startColumn;
    const message = atEnd ? `the filter ends too early: ${error.message.replace(/, found the end of the filter$/, '')}` : error.message;
    throw filterError(text, line, column, message, 'write comparisons as column op value, e.g. ns = "gatos/jobs" and payload.n > 3');
  }
  return flatten(predicate);
}

const RANGE_OPS: Record<string, CompareOp> = { eq: '=', ne: '!=', gt: '>', gte: '>=', lt: '<', lte: '<=' };

function jsonLiteral(value: unknown, where: string): Literal {
  if (typeof value === 'string') {
    if (!DATE_PARTS.test(value)) return { type: 'string', value };
    try {
      return { type: 'date', value: normalizeDate(value) };
    } catch (err) {
      if (err instanceof NotADate)
        throw new GatosError('invalid_filter', `${where}: ${err.message} (hint: ${DATE_HINT})`, { hint: DATE_HINT });
      throw err;
    }
  }
  if (typeof value === 'number') return { type: 'number', value: normalizeNumber(String(value)) };
  if (typeof value === 'boolean') return { type: 'bool', value };
  if (value === null) return { type: 'null' };
  throw new GatosError('invalid_filter', `${where}: a value must be a string, number, boolean or null`);
}

/** Parses the ADR's JSON form: `{"col": v}`, `{"col": {"gte": v}}`, `{"col": {"in": [...]}}`. */
export function parseFilterJson(text: string): Predicate {
  let value: unknown;
  try {
    value = parseJson(text);
  } catch (err) {
    throw new GatosError('invalid_filter', `filter JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new GatosError('invalid_filter', 'a JSON filter is an object of column: value');
  const args: Predicate[] = [];
  for (const [column, condition] of Object.entries(value)) {
    const path = column.split('.');
    if (condition !== null && typeof condition === 'object' && !Array.isArray(condition)) {
      for (const [op, operand] of Object.entries(condition)) {
        if (op === 'in' && Array.isArray(operand)) {
          args.push({ kind: 'in', path, values: operand.map((v) => jsonLiteral(v, column)) });
          continue;
        }
        const compare = RANGE_OPS[op];
        if (!compare)
          throw new GatosError('invalid_filter', `${column}: unknown operator ${JSON.stringify(op)} (eq, ne, gt, gte, lt, lte, in)`);
        args.push({ kind: 'cmp', path, op: compare, value: jsonLiteral(operand, column) });
      }
    } else {
      args.push({ kind: 'cmp', path, op: '=', value: jsonLiteral(condition, column) });
    }
  }
  if (args.length === 0) throw new GatosError('invalid_filter', 'an empty JSON filter');
  return flatten(args.length === 1 ? (args[0] as Predicate) : { kind: 'and', args });
}

/** Either syntax: JSON when it starts with `{`. */
export function parseFilter(text: string): Predicate {
  return text.trimStart().startsWith('{') ? parseFilterJson(text) : parseFilterText(text);
}
