export const OBJECT_ID_PATTERN = '^[0-9a-fA-F]{24}$'
const objectIdShape = new RegExp(OBJECT_ID_PATTERN)

export function canonicalObjectId (value: string): string | null {
  return objectIdShape.test(value) ? value.toLowerCase() : null
}

export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
const uuidShape = new RegExp(UUID_PATTERN)

export function canonicalUuid (value: string): string | null {
  return uuidShape.test(value) ? value.toLowerCase() : null
}
