import { describe, expect, it } from 'vitest'
import { databaseNameOf, withDatabaseName } from '../src/storage/mongo-url.js'

describe('databaseNameOf', () => {
  it('reads the database name from the path, decoded', () => {
    expect(databaseNameOf('mongodb://localhost:27017/shop')).toBe('shop')
    expect(databaseNameOf('mongodb://localhost/my%20db?w=majority')).toBe('my db')
    expect(databaseNameOf('mongodb+srv://u:p@cluster.example.net/analytics?retryWrites=true')).toBe('analytics')
    expect(databaseNameOf('mongodb://a:1,b:2/rs_db?replicaSet=rs0')).toBe('rs_db')
  })

  it('falls back to identify when the path names no database', () => {
    expect(databaseNameOf('mongodb://localhost:27017')).toBe('identify')
    expect(databaseNameOf('mongodb://localhost:27017/')).toBe('identify')
    expect(databaseNameOf('mongodb://localhost/?maxPoolSize=1')).toBe('identify')
    expect(databaseNameOf('mongodb+srv://cluster.example.net')).toBe('identify')
  })

  it('rejects what is not a MongoDB connection string', () => {
    expect(() => databaseNameOf('postgres://localhost/db')).toThrow(/mongodb:\/\//)
  })
})

describe('withDatabaseName', () => {
  it('puts a name where there was none and keeps the options', () => {
    expect(withDatabaseName('mongodb://127.0.0.1:1234/?maxPoolSize=1', 'x')).toBe('mongodb://127.0.0.1:1234/x?maxPoolSize=1')
    expect(withDatabaseName('mongodb://127.0.0.1:1234', 'x')).toBe('mongodb://127.0.0.1:1234/x')
  })

  it('replaces the name and keeps credentials, hosts and options', () => {
    expect(withDatabaseName('mongodb://h/old', 'new')).toBe('mongodb://h/new')
    expect(withDatabaseName('mongodb://us%40er:p%3Ass@a:1,b:2/old?authSource=admin&replicaSet=rs0', 'new'))
      .toBe('mongodb://us%40er:p%3Ass@a:1,b:2/new?authSource=admin&replicaSet=rs0')
  })

  it('keeps mongodb+srv', () => {
    expect(withDatabaseName('mongodb+srv://u:p@cluster.example.net/db?w=majority', 'y')).toBe('mongodb+srv://u:p@cluster.example.net/y?w=majority')
  })

  it('encodes the name so that databaseNameOf reads it back', () => {
    const url = withDatabaseName('mongodb://h/?w=1', 'a b/c')
    expect(url).toBe('mongodb://h/a%20b%2Fc?w=1')
    expect(databaseNameOf(url)).toBe('a b/c')
  })
})
