// The list of commands `alpaca-lora` knows. Each lives in its own file in this folder.

import type { Command } from './command.ts';

export const commands: Command[] = [];
