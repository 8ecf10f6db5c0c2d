#!/usr/bin/env node
// `git gatos <args>`: git runs `git-gatos <args>` when it is on PATH.
import { loadMain } from './load-main.js';

const { main } = await loadMain();
process.exitCode = await main(process.argv.slice(2));
