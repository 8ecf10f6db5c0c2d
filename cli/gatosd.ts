#!/usr/bin/env node
// `gatosd [flags]` = `gatos daemon [flags]`.
import { main } from './main.js';

process.exitCode = await main(['daemon', ...process.argv.slice(2)]);
