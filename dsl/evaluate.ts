/**
 * Compiles a predicate against a table into a row test. Everything is checked before a single
 * row is read: an unknown column, a path into a column that is not JSON, or a literal that the
 * column's type cannot be compared with deterministically is `UNSUPPORTED_FILTER`. Strings
 * compare in byte order, numbers exactly, dates as unix seconds against timestamp columns, and
 * a JSON value of another type than the literal never matches.
 */
import { GatosError } from '../engine/errors.js';
import type { Row, TableDef } from '../exporter/tables.js';
import { type CompareOp, canonicalText, dateSeconds, type Literal, type Predicate } from './ast.js';

export type RowTest = (row: Row) => boolean;

function unsupported(predicate: Predicate, table: string, why: string): GatosError {
  return new GatosError('UNSUPPORTED_FILTER', `cannot evaluate ${canonicalText(predicate)} on ${table}: ${why}`, {
    table,
    filter: canonicalText(predicate),
  });
}

type Comparable =
  | { kind: 'string'; value: string }
  | { kind: 'number'; value: number }
  | { kind: 'bool'; value: boolean }
  | { kind: 'null' };

function compare(op: CompareOp, a: Comparable, b: Comparable): boolean {
  if (a.kind === 'null' || b.kind === 'null') {
    const same = a.kind === b.kind;
    return op === '=' ? same : op === '!=' ? !same : false;
  }
  if (a.kind !== b.kind) return op === '!=';
  const order =
    a.kind === 'string'
      ? Buffer.compare(Buffer.from(a.value), Buffer.from(b.value as string))
      : a.value === b.value
        ? 0
        : a.value < (b.value as number | boolean)
          ? -1
          : 1;
  switch (op) {
    case '=':
      return order === 0;
    case '!=':
      return order !== 0;
    case '<':
      return order < 0;
    case '<=':
      return order <= 0;
    case '>':
      return order > 0;
    case '>=':
      return order >= 0;
  }
}

function fromJson(value: unknown): Comparable | undefined {
  if (value === null) return { kind: 'null' };
  if (typeof value === 'string') return { kind: 'string', value };
  if (typeof value === 'number') return { kind: 'number', value };
  if (typeof value === 'boolean') return { kind: 'bool', value };
  return undefined;
}

/** The literal as the column type sees it; undefined when that comparison is not deterministic. */
function literalFor(literal: Literal, type: string): Comparable | undefined {
  if (literal.type === 'null') return { kind: 'null' };
  if (type === 'json') {
    if (literal.type === 'date') return { kind: 'string', value: literal.value };
    if (literal.type === 'number') return { kind: 'number', value: Number(literal.value) };
    return literal.type === 'string' ? { kind: 'string', value: literal.value } : { kind: 'bool', value: literal.value };
  }
  if (type === 'text') return literal.type === 'string' ? { kind: 'string', value: literal.value } : undefined;
  if (literal.type === 'number')
    return Number.isSafeInteger(Number(literal.value)) ? { kind: 'number', value: Number(literal.value) } : undefined;
  if (literal.type === 'date' && type === 'timestamp') {
    // Timestamps are whole seconds: an instant between two is refused, as `ts = 1.5` is.
    const seconds = dateSeconds(literal.value);
    return Number.isInteger(seconds) ? { kind: 'number', value: seconds } : undefined;
  }
  return undefined;
}

/** Compiles `predicate` for rows of `def`; throws `UNSUPPORTED_FILTER` when it cannot be evaluated exactly. */
export function compileFilter(predicate: Predicate, def: TableDef): RowTest {
  switch (predicate.kind) {
    case 'and': {
      const tests = predicate.args.map((arg) => compileFilter(arg, def));
      return (row) => tests.every((t) => t(row));
    }
    case 'or': {
      const tests = predicate.args.map((arg) => compileFilter(arg, def));
      return (row) => tests.some((t) => t(row));
    }
    case 'not': {
      const test = compileFilter(predicate.arg, def);
      return (row) => !test(row);
    }
    default: {
      const [columnName, ...rest] = predicate.path as [string, ...string[]];
      const column = def.columns.find((col) => col.name === columnName);
      if (!column)
        throw unsupported(predicate, def.name, `no column ${columnName} (columns: ${def.columns.map((c) => c.name).join(', ')})`);
      if (rest.length > 0 && column.type !== 'json') throw unsupported(predicate, def.name, `${columnName} is not a JSON column`);
      const literals = (predicate.kind === 'in' ? predicate.values : [predicate.value]).map((literal) => {
        const value = literalFor(literal, column.type);
        if (!value)
          throw unsupported(
            predicate,
            def.name,
            literal.type === 'date' && column.type === 'timestamp'
              ? `${columnName} holds whole seconds; ${literal.value} falls between two`
              : `a ${literal.type} cannot be compared with ${column.type} column ${columnName}${
                  literal.type === 'string' && column.type === 'timestamp' ? ` (dates go unquoted: ${columnName} >= 2025-01-01)` : ''
                }`,
          );
        return value;
      });
      const op: CompareOp = predicate.kind === 'in' ? '=' : predicate.op;
      const read = (row: Row): Comparable | undefined => {
        const raw = row[columnName];
        if (column.type !== 'json') {
          if (raw === null || raw === undefined) return { kind: 'null' };
          return typeof raw === 'number' ? { kind: 'number', value: raw } : { kind: 'string', value: raw };
        }
        let value: unknown = typeof raw === 'string' ? JSON.parse(raw) : null;
        for (const key of rest) {
          if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
          value = (value as Record<string, unknown>)[key];
          if (value === undefined) return undefined;
        }
        return fromJson(value);
      };
      return (row) => {
        const value = read(row);
        if (!value) return op === '!=';
        return predicate.kind === 'in' ? literals.some((l) => compare('=', value, l)) : compare(op, value, literals[0] as Comparable);
      };
    }
  }
}
