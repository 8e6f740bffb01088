import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { API_TYPES_PATH, apiTypesSource } from './api-types.js'

// `npm run generate-types -w clients/node`: writes the client's request and answer types from the service's schemas.
const root = fileURLToPath(new URL('../../../', import.meta.url))
writeFileSync(`${root}${API_TYPES_PATH}`, apiTypesSource())
console.log(`wrote ${API_TYPES_PATH}`)
