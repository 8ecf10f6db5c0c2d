/** Validators for the reference JSON Schemas in ../shared/reference (what we write must pass them). */
import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

// ajv-formats is CommonJS: under NodeNext its default import is the module object.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as unknown as (
  ajv: Ajv2020,
) => Ajv2020;

const REFERENCE = new URL('../../../../shared/reference/', import.meta.url);

export function referenceJson(path: string): unknown {
  return JSON.parse(readFileSync(new URL(path, REFERENCE), 'utf8'));
}

/** A validator for `schemas/v1/<path>`, with the shared id definitions loaded. */
export function referenceSchema(path: string): ValidateFunction {
  // Formats (date-time, uri, …) are checked, not ignored.
  const ajv = addFormats(new Ajv2020({ strict: false }));
  ajv.addSchema(referenceJson('schemas/v1/common/ids.schema.json') as object);
  return ajv.compile(referenceJson(`schemas/v1/${path}`) as object);
}
