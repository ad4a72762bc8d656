// Parses Mermaid diagrams with the mermaid library GitHub renders them with, so a map that
// would show as "Unable to render" on a pull request fails CI instead.
// Usage: node check.mjs FILE...   (a .md file: each ```mermaid block; any other: the whole file)
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

// mermaid sanitizes labels with DOMPurify, which needs a DOM even just to parse.
const { window } = new JSDOM("");
globalThis.window = window;
globalThis.document = window.document;
const { default: mermaid } = await import("mermaid");

let failed = 0;
for (const file of process.argv.slice(2)) {
  const text = readFileSync(file, "utf8");
  const diagrams = file.endsWith(".md")
    ? [...text.matchAll(/^```mermaid\n([\s\S]*?)^```$/gm)].map((match) => match[1])
    : [text];
  if (diagrams.length === 0) {
    console.error(`${file}: no mermaid diagram`);
    failed += 1;
  }
  for (const [index, diagram] of diagrams.entries()) {
    try {
      await mermaid.parse(diagram);
      console.log(`${file} #${index + 1}: parses`);
    } catch (error) {
      console.error(`${file} #${index + 1}: ${error.message ?? error}`);
      failed += 1;
    }
  }
}
process.exit(failed ? 1 : 0);
