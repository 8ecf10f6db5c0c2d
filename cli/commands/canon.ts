import { blake3Ready, contentId } from '../../engine/codec/blake3.js';
import { canonicalize, parseJson } from '../../engine/codec/canonical-json.js';
import { GatosError } from '../../engine/errors.js';
import { type Command, readInputText } from '../command.js';

export const canonCommand: Command = {
  name: 'canon',
  usage: [
    'usage: gatos canon [FILE|-] [--id] [--json]',
    '',
    '  FILE    JSON document to read; "-" or nothing reads standard input',
    '  --id    print blake3:<hex> of the canonical bytes instead of the bytes',
    '',
    'The canonical bytes are printed followed by a newline; the id covers the bytes only.',
    'Duplicate object keys, lone surrogates and non-finite numbers are rejected.',
  ].join('\n'),
  options: { id: { type: 'boolean' } },
  allowPositionals: true,
  async run(ctx) {
    if (ctx.positionals.length > 1) throw new GatosError('usage', 'gatos canon takes at most one FILE');
    await blake3Ready();
    const canonical = canonicalize(parseJson(readInputText(ctx.positionals[0] ?? '-')));
    const id = contentId(canonical);
    ctx.out.result({ canonical, id }, ctx.values.id ? id : canonical);
    return 0;
  },
};
