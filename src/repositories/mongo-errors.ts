import {
  MongoNetworkError,
  MongoNotConnectedError,
  MongoOperationTimeoutError,
  MongoServerClosedError,
  MongoServerError,
  MongoServerSelectionError,
  MongoTopologyClosedError
} from 'mongodb'

export const DUPLICATE_KEY = 11000

/** Both MongoDB and the stand-in report a broken unique index with code 11000 (the stand-in names no index). */
export function isDuplicateKey (error: unknown): boolean {
  return error instanceof MongoServerError && error.code === DUPLICATE_KEY
}

/**
 * Server errors of a replica set changing its primary or shutting down:
 * NotWritablePrimary, NotPrimaryNoSecondaryOk, NotPrimaryOrSecondary,
 * InterruptedAtShutdown, InterruptedDueToReplStateChange,
 * PrimarySteppedDown, ShutdownInProgress.
 */
const TRANSIENT_CODES = new Set([10107, 13435, 13436, 11600, 11602, 189, 91])

/** The database cannot be reached right now, or is changing primaries; the caller should try again later. */
export function isDatabaseUnavailable (error: unknown): boolean {
  if (error instanceof MongoServerError) {
    return TRANSIENT_CODES.has(Number(error.code)) || error.hasErrorLabel('RetryableWriteError') || error.hasErrorLabel('ResetPool')
  }
  return error instanceof MongoNetworkError ||
    error instanceof MongoServerSelectionError ||
    error instanceof MongoNotConnectedError ||
    error instanceof MongoOperationTimeoutError ||
    error instanceof MongoServerClosedError ||
    error instanceof MongoTopologyClosedError
}

/**
 * Runs a write again when a concurrent writer won the race to insert the same
 * `_id` or unique key: the next attempt finds that document and updates it.
 */
export async function retryOnDuplicateKey<T> (write: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write()
    } catch (error) {
      if (!isDuplicateKey(error) || attempt >= attempts) throw error
    }
  }
}
