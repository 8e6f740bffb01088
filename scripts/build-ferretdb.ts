import { ensureFerretdbBinary } from './local-database.js'

/** Builds the FerretDB stand-in ahead of time (CI, or before going offline). */
console.log(await ensureFerretdbBinary())
