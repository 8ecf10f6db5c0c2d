import { Output } from '../../cli/output.js';

type Main = (argv: string[], out?: Output) => Promise<number>;

/** Runs a CLI `main` in this process with its stdout and stderr captured: exit status and what it printed. */
export async function runCaptured(main: Main, argv: string[], json = false): Promise<{ status: number; printed: string }> {
  let printed = '';
  const sink = {
    write: (text: string) => {
      printed += text;
      return true;
    },
    isTTY: false,
  } as unknown as NodeJS.WriteStream;
  const status = await main(argv, new Output(json, sink, sink));
  return { status, printed };
}
