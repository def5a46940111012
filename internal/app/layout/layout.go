// Package layout holds the test that keeps the tree's layering honest: the
// stages (ingest → enrich → detect → deliver) and schemas sit on the
// foundation (internal/platform); the wiring and tools above them
// (internal/app, cmd) read config and put them together. Arrows only point
// down:
//
//   - internal/platform imports no stage and nothing of internal/app;
//   - no stage, nor schemas, imports internal/app or cmd;
//   - the stages do not import each other's packages, except enrich (context
//     every stage may add) and schemas; detect/detecttest may import ingest,
//     because detection scenarios are written as vendor records;
//   - schemas imports nothing of the module.
//
// Only non-test files count: a test may use whatever makes it real.
package layout
