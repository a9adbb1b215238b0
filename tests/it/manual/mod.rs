//! The manual (README.md, docs/, ARCHITECTURE.md, CONTRIBUTING.md, bench/README.md) against the
//! things it describes: every relative link and anchor resolves; the reference pages list every
//! key, flag and knob the code defines, and the type table is what the loader creates; every
//! job file, command line and deployment file it shows is a tested file under `examples/` or
//! parses as the program reads it; the README's quickstart runs as written.
//!
//! `markdown` reads the pages (pulldown-cmark, as code hosts and mdBook do); each other file
//! checks one kind of promise. A new page under docs/ is checked by adding it to SUMMARY.md.

mod deploy;
mod links;
mod markdown;
mod quickstart;
mod reference;
mod shell;
mod snippets;
