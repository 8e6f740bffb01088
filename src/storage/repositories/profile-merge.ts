import type { Document, ObjectId } from 'mongodb'
import type { Metadata, MetadataChange, ProfileLimits } from '../../domain/metadata.js'

/* identify's common call as one update pipeline that merges exactly as planMerge (docs/storage.md#the-one-command-merge). */

// A name may hold any character but a leading "$" or a ".", hence $getField of a $literal.
const fieldOf = (name: string, input: unknown = '$metadata'): Document => ({ $getField: { field: { $literal: name }, input } })
const isMissing = (expression: unknown): Document => ({ $eq: [{ $type: expression }, 'missing'] })
const isObject = (expression: unknown): Document => ({ $eq: [{ $type: expression }, 'object'] })
// DocumentDB evaluates every branch of $cond and $and (docs/documentdb.md), so an operator is only ever given a value it accepts.
const asObject = (expression: unknown): Document => ({ $cond: [isObject(expression), expression, {}] })
const asArray = (expression: unknown): Document => ({ $cond: [{ $isArray: expression }, expression, []] })
const sizeOf = (object: unknown): Document => ({ $size: { $objectToArray: object } })

export function jsonEqualExpression (stored: unknown, value: unknown): unknown {
  if (value === null) return { $eq: [{ $type: stored }, 'null'] }
  if (typeof value !== 'object') return { $eq: [stored, { $literal: value }] }
  if (Array.isArray(value)) {
    // Arrays of plain values compare item by item as BSON; objects inside need their keys compared in any order.
    if (!value.some((item) => typeof item === 'object' && item !== null)) return { $eq: [stored, { $literal: value }] }
    const array = asArray(stored)
    const items = value.map((item, index) => jsonEqualExpression({ $arrayElemAt: [array, index] }, item))
    return { $and: [{ $isArray: stored }, { $eq: [{ $size: array }, value.length] }, ...items] }
  }
  const object = asObject(stored)
  const entries = Object.entries(value as Metadata)
  const fields = entries.map(([name, item]) => jsonEqualExpression(fieldOf(name, object), item))
  return { $and: [isObject(stored), { $eq: [sizeOf(object), entries.length] }, ...fields] }
}

function mergedExpression (change: MetadataChange): unknown {
  const onceFields = Object.entries(change.setOnce).map(([name, value]) => ({ $cond: [isMissing(fieldOf(name)), { $literal: { [name]: value } }, {}] }))
  let merged: unknown = { $mergeObjects: ['$metadata', { $literal: change.set }, ...onceFields] }
  for (const name of change.unset) merged = { $unsetField: { field: { $literal: name }, input: merged } }
  return merged
}

function changedExpression (change: MetadataChange): unknown {
  return {
    $or: [
      ...Object.entries(change.set).map(([name, value]) => ({ $not: [jsonEqualExpression(fieldOf(name), value)] })),
      ...Object.keys(change.setOnce).map((name) => isMissing(fieldOf(name))),
      ...change.unset.map((name) => ({ $not: [isMissing(fieldOf(name))] }))
    ]
  }
}

/** planMerge's limits: only a merge that grows a profile past a limit is refused. */
function withinLimitsExpression (merged: string, limits: ProfileLimits): unknown {
  const grownPast = (size: (object: unknown) => unknown, limit: number): unknown =>
    ({ $and: [{ $gt: [size(merged), limit] }, { $gt: [size(merged), size('$metadata')] }] })
  return { $not: [{ $or: [grownPast(sizeOf, limits.profileMaxFields), grownPast((object) => ({ $bsonSize: object }), limits.profileMaxBytes)] }] }
}

export interface ListedMerge {
  userId: string
  visitorId: string
  change: MetadataChange
  limits: ProfileLimits
  /** Written by this merge alone, so that the profile returned tells whether it was applied. */
  changeId: ObjectId
  now: Date
}

/** The first stage decides and marks the profile with changeId; the second merges where the mark is. */
export function listedMergePipeline ({ userId, visitorId, change, limits, changeId, now }: ListedMerge): Document[] {
  const applies = {
    $let: {
      vars: { merged: mergedExpression(change) },
      in: {
        $and: [
          { $eq: ['$userId', { $literal: userId }] },
          { $in: [{ $literal: visitorId }, { $ifNull: ['$visitorIds', []] }] },
          changedExpression(change),
          withinLimitsExpression('$$merged', limits)
        ]
      }
    }
  }
  const marked = { $eq: ['$changeId', changeId] }
  return [
    { $set: { changeId: { $cond: [applies, changeId, '$changeId'] } } },
    { $set: { metadata: { $cond: [marked, mergedExpression(change), '$metadata'] }, updatedAt: { $cond: [marked, now, '$updatedAt'] } } }
  ]
}
