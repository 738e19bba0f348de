// The benchmarks' command-line flags: `--name value` pairs read from process.argv. Not the toolkit's CLI parser
// (src/cli), which validates and documents its flags; a benchmark checks the values it cares about itself.

/** The value after --name, or the fallback when the flag is absent or has no value. */
export function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
