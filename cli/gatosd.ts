#!/usr/bin/env node
// `gatosd [flags]` = `gatos daemon [flags]`.
import { loadMain } from './load-main.js';

const { main } = await loadMain();
process.exitCode = await main(['daemon', ...process.argv.slice(2)]);
