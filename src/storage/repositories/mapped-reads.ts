import { ObjectId, type Collection, type Document, type Filter, type WithId } from 'mongodb'

/** The document with this id, as the caller maps it; null when there is none. */
export async function findById<Stored extends Document & { _id: ObjectId }, Mapped> (
  collection: Collection<Stored>, id: string, map: (document: WithId<Stored>) => Mapped
): Promise<Mapped | null> {
  const document = await collection.findOne({ _id: new ObjectId(id) } as Filter<Stored>)
  return document === null ? null : map(document)
}

/** The documents whose field holds this owner's id, oldest first, as the caller maps them. */
export async function listByOwner<Stored extends Document, Mapped> (
  collection: Collection<Stored>, field: keyof Stored & string, ownerId: string, map: (document: WithId<Stored>) => Mapped
): Promise<Mapped[]> {
  const documents = await collection.find({ [field]: new ObjectId(ownerId) } as Filter<Stored>).sort({ _id: 1 }).toArray()
  return documents.map(map)
}
