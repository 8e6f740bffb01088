import {
  MongoBulkWriteError,
  MongoError,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoOperationTimeoutError,
  MongoServerClosedError,
  MongoServerError,
  MongoServerSelectionError,
  MongoTopologyClosedError
} from 'mongodb'

export const DUPLICATE_KEY = 11000

/** A rolled-back deadlock of a DocumentDB write command (docs/documentdb.md); MongoDB never answers it outside a transaction. */
export const isWriteConflict = (error: unknown): boolean => error instanceof MongoServerError && error.code === 112

/** MongoDB and DocumentDB both report a broken unique index with code 11000 (DocumentDB without keyPattern or keyValue). */
export function isDuplicateKey (error: unknown): boolean {
  return error instanceof MongoServerError && error.code === DUPLICATE_KEY
}

/** NotWritablePrimary, NotPrimaryNoSecondaryOk, NotPrimaryOrSecondary, InterruptedAtShutdown, InterruptedDueToReplStateChange, PrimarySteppedDown, ShutdownInProgress. */
const TRANSIENT_CODES = new Set([10107, 13435, 13436, 11600, 11602, 189, 91])

const INTERNAL_ERROR = 1

/** DocumentDB's gateway cut off from PostgreSQL (docs/reliability.md#what-an-outage-looks-like); MongoDB's InternalErrors never start so. */
const POSTGRES_UNREACHABLE = /^(error connecting to server|error communicating with the server|connection closed)\b/

const POSTGRES_ERROR_CODE_NAME = 'DocumentDB error.'

/** Connection exceptions (class 08), and a server shut down, crashed or starting up (57P01, 57P02, 57P03). */
const POSTGRES_UNAVAILABLE_STATE = /^(08...|57P0[123])$/

/** The SQLSTATE the gateway packs into a code, six bits a character from '0' (its `postgres_sqlstate_to_i32`). */
function sqlStateOf (code: number): string {
  let state = ''
  for (let shift = 0; shift < 30; shift += 6) state += String.fromCharCode(((code >> shift) & 0x3f) + 0x30)
  return state
}

function isPostgresUnavailable (error: MongoServerError): boolean {
  if (error.code === INTERNAL_ERROR) return POSTGRES_UNREACHABLE.test(error.message)
  return error.codeName === POSTGRES_ERROR_CODE_NAME && typeof error.code === 'number' && POSTGRES_UNAVAILABLE_STATE.test(sqlStateOf(error.code))
}

/** The driver wraps whatever fails a bulk write's command, a network error too, in a MongoBulkWriteError. */
function failureOf (error: unknown): unknown {
  return error instanceof MongoBulkWriteError && error.errorResponse instanceof MongoError ? error.errorResponse : error
}

export function isDatabaseUnavailable (thrown: unknown): boolean {
  const error = failureOf(thrown)
  if (error instanceof MongoServerError) {
    return TRANSIENT_CODES.has(Number(error.code)) ||
      error.hasErrorLabel('RetryableWriteError') ||
      error.hasErrorLabel('ResetPool') ||
      isPostgresUnavailable(error)
  }
  return error instanceof MongoNetworkError ||
    error instanceof MongoServerSelectionError ||
    error instanceof MongoNotConnectedError ||
    error instanceof MongoOperationTimeoutError ||
    error instanceof MongoServerClosedError ||
    error instanceof MongoTopologyClosedError
}

/** A concurrent writer won the race to insert the same `_id` or unique key: the next attempt finds and updates its document. */
export async function retryOnDuplicateKey<T> (write: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write()
    } catch (error) {
      if (!isDuplicateKey(error) || attempt >= attempts) throw error
    }
  }
}
