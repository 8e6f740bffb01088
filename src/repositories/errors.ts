import {
  MongoNetworkError,
  MongoNotConnectedError,
  MongoOperationTimeoutError,
  MongoServerClosedError,
  MongoServerError,
  MongoServerSelectionError,
  MongoTopologyClosedError
} from 'mongodb'

const DUPLICATE_KEY = 11000

/** Both MongoDB and the stand-in report a broken unique index with code 11000 (the stand-in names no index). */
export function isDuplicateKey (error: unknown): boolean {
  return error instanceof MongoServerError && error.code === DUPLICATE_KEY
}

/** The database cannot be reached right now; the caller should try again later. */
export function isDatabaseUnavailable (error: unknown): boolean {
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
