/** Validators for the reference JSON Schemas in ../shared/reference (what we write must pass them). */
import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';

const REFERENCE = new URL('../../../../shared/reference/', import.meta.url);

export function referenceJson(path: string): unknown {
  return JSON.parse(readFileSync(new URL(path, REFERENCE), 'utf8'));
}

/** A validator for `schemas/v1/<path>`, with the shared id definitions loaded. */
export function referenceSchema(path: string): ValidateFunction {
  const ajv = new Ajv2020({ strict: false });
  ajv.addSchema(referenceJson('schemas/v1/common/ids.schema.json') as object);
  return ajv.compile(referenceJson(`schemas/v1/${path}`) as object);
}
