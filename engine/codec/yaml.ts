/**
 * YAML 1.2 (core schema, duplicate keys refused) for job manifests and fold specs. The yaml
 * package is loaded on first use: loading it costs ~17 ms, which every command importing those
 * modules (an export reads jobs and checkpoints) would otherwise pay without parsing any YAML.
 */
import { createRequire } from 'node:module';

type Yaml = typeof import('yaml');

let yaml: Yaml | undefined;

/** Parses YAML 1.2 text (JSON is a subset); throws the parser's error on invalid input. */
export function parseYaml(text: string): unknown {
  yaml ??= createRequire(import.meta.url)('yaml') as Yaml;
  return yaml.parse(text, { version: '1.2', schema: 'core', uniqueKeys: true, prettyErrors: false });
}
