import { Command, CommanderError } from 'commander'
import { ConfigError } from '../config.js'
import { DomainError } from '../domain/errors.js'
import { isDatabaseUnavailable } from '../storage/mongo-errors.js'
import { addAccountCommands } from './accounts.js'
import { CliError, CliExit, createContext, type CliIo, type CliOutput } from './context.js'
import { addKeyCommands } from './keys.js'
import { addProfileCommands } from './profiles.js'
import { addTokenCommands } from './tokens.js'
import { addWebsiteCommands } from './websites.js'

export type { CliIo } from './context.js'

const helpWidth = (stream: CliOutput): number => (stream.isTTY === true ? stream.columns : undefined) ?? 80
const hasColors = (stream: CliOutput): boolean => stream.isTTY === true && stream.hasColors?.() === true

/** The whole command line on the given io: nothing in it exits the process or touches its streams. */
export function buildProgram (io: CliIo): Command {
  const program = new Command('cli')
    .description('Administer accounts, websites, website keys, account tokens and profiles.')
    .option('--json', 'print exactly one JSON object on stdout')
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      getOutHelpWidth: () => helpWidth(io.stdout),
      getErrHelpWidth: () => helpWidth(io.stderr),
      getOutHasColors: () => hasColors(io.stdout),
      getErrHasColors: () => hasColors(io.stderr)
    })
    // Throw instead of exiting, so that runCli sets the exit code once.
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
  const cli = createContext(io, () => program.opts<{ json?: boolean }>().json === true)
  for (const add of [addAccountCommands, addWebsiteCommands, addKeyCommands, addTokenCommands, addProfileCommands]) add(program, cli)
  return program
}

/** Runs one command line (the arguments after the script's name) and returns its exit code. */
export async function runCli (io: CliIo, args: readonly string[]): Promise<number> {
  try {
    await buildProgram(io).parseAsync(args, { from: 'user' })
    return 0
  } catch (error) {
    return reportError(io, error)
  }
}

function reportError (io: CliIo, error: unknown): number {
  // Commander has already printed its own errors, and help or version output exits with 0.
  if (error instanceof CommanderError) return error.exitCode
  if (error instanceof CliExit) return error.exitCode
  const detail = error instanceof Error ? error.message : String(error)
  if (error instanceof CliError || error instanceof DomainError) io.stderr.write(`error: ${detail}\n`)
  else if (error instanceof ConfigError) io.stderr.write(`error: configuration: ${detail}\n`)
  else if (isDatabaseUnavailable(error)) io.stderr.write(`error: cannot reach the database: ${detail}\n`)
  // Anything else is a bug: the stack trace is what its report needs.
  else io.stderr.write(`error: ${error instanceof Error ? String(error.stack) : detail}\n`)
  return 1
}
