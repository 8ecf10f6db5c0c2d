#!/usr/bin/env node
// `git gatos <args>`: git runs `git-gatos <args>` when it is on PATH.
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
