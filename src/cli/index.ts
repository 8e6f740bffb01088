import { runCli } from './program.js'

process.exitCode = await runCli({
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env
}, process.argv.slice(2))
