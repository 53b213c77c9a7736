// danfojs requires "xlsx" for its readExcel and toExcel functions only.
// This package replaces it (see docs/dependencies.md): every entry point
// raises, so no spreadsheet parser is reachable from the toolkit.
"use strict";

function disabled() {
  throw new Error(
    "Spreadsheet input and output are disabled in the CAMDrop toolkit: " +
      "xlsx is replaced by an empty package because of its advisories. " +
      "Use CSV (metricsCsv) instead.",
  );
}

module.exports = {
  read: disabled,
  readFile: disabled,
  writeFile: disabled,
  utils: new Proxy({}, { get: () => disabled }),
};
