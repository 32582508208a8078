import type {ErrorObject} from 'ajv'
import {describe, expect, it} from 'vitest'

import {formatSchemaErrors} from '../../src/oci/schema-errors.js'

const err = (e: Partial<ErrorObject> & Pick<ErrorObject, 'keyword'>): ErrorObject =>
  ({instancePath: '', schemaPath: `#/${e.keyword}`, params: {}, ...e}) as ErrorObject

describe('formatSchemaErrors', () => {
  it('returns nothing for no errors', () => {
    expect(formatSchemaErrors(null)).toEqual([])
    expect(formatSchemaErrors(undefined)).toEqual([])
    expect(formatSchemaErrors([])).toEqual([])
  })

  it.each<[string, ErrorObject, unknown, string]>([
    ['a missing property at its own pointer', err({keyword: 'required', instancePath: '/a', params: {missingProperty: 'b'}, message: "must have required property 'b'"}), undefined, '/a/b: is required but missing'],
    ['an unknown property at its own pointer, escaped', err({keyword: 'additionalProperties', params: {additionalProperty: 'x/y~z'}}), undefined, '/x~1y~0z: is not allowed here (unknown property)'],
    ['the root as /', err({keyword: 'type', params: {type: 'object'}, message: 'must be object'}), 42, '/: must be object (got 42)'],
    ['an enum with its values', err({keyword: 'enum', instancePath: '/m', params: {allowedValues: ['a', 'b']}}), {m: 'c'}, '/m: must be one of "a", "b" (got "c")'],
    ['a const', err({keyword: 'const', instancePath: '/v', params: {allowedValue: 2}}), {v: 1}, '/v: must be 2 (got 1)'],
    ['a value shortened and escaped', err({keyword: 'pattern', instancePath: '/d', params: {pattern: '^x$'}, message: 'must match pattern "^x$"'}), {d: `\u001b[31m${'y'.repeat(200)}`}, `/d: must match pattern "^x$" (got "\\u001b[31m${'y'.repeat(66)}…)`],
    [
      'a digest pattern in words',
      err({keyword: 'pattern', instancePath: '/d', params: {pattern: '^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$'}}),
      {d: 'x'},
      '/d: must be a digest such as "sha256:<64 hex digits>" (got "x")',
    ],
    ['a pointer the data does not have', err({keyword: 'type', instancePath: '/nope', message: 'must be string'}), {}, '/nope: must be string'],
    ['another keyword by its message', err({keyword: 'minItems', instancePath: '/l', message: 'must NOT have fewer than 1 items'}), {l: []}, '/l: must NOT have fewer than 1 items'],
  ])('reports %s', (_name, error, data, expected) => {
    expect(formatSchemaErrors([error], data)).toEqual([expected])
  })

  it('folds anyOf type branches into one line', () => {
    const errors = [
      err({keyword: 'type', instancePath: '/Cmd', schemaPath: '#/definitions/s/anyOf/0/type', params: {type: 'array'}}),
      err({keyword: 'type', instancePath: '/Cmd', schemaPath: '#/definitions/s/anyOf/1/type', params: {type: 'null'}}),
      err({keyword: 'anyOf', instancePath: '/Cmd', schemaPath: '#/definitions/s/anyOf', message: 'must match a schema in anyOf'}),
    ]
    expect(formatSchemaErrors(errors, {Cmd: 'sh'})).toEqual(['/Cmd: must be array or null (got "sh")'])
  })

  it('keeps the deeper reason of an anyOf and drops the other branch', () => {
    const errors = [
      err({keyword: 'type', instancePath: '/L/a', schemaPath: '#/definitions/m/anyOf/0/additionalProperties/type', params: {type: 'string'}, message: 'must be string'}),
      err({keyword: 'type', instancePath: '/L', schemaPath: '#/definitions/m/anyOf/1/type', params: {type: 'null'}, message: 'must be null'}),
      err({keyword: 'anyOf', instancePath: '/L', schemaPath: '#/definitions/m/anyOf', message: 'must match a schema in anyOf'}),
    ]
    expect(formatSchemaErrors(errors, {L: {a: 1}})).toEqual(['/L/a: must be string (got 1)'])
  })

  it('limits the list and says how many were left out, after removing duplicates', () => {
    const errors = Array.from({length: 14}, (_, i) => err({keyword: 'type', instancePath: `/${i % 12}`, message: 'must be string'}))
    const lines = formatSchemaErrors(errors, undefined, 10)
    expect(lines).toHaveLength(11)
    expect(lines.at(-1)).toBe('… and 2 more')
  })
})
