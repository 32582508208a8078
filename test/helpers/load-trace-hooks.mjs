// The resolve hook of load-trace.cjs: appends the URL of every module imported, one a line.
import {appendFileSync} from 'node:fs'

let file

export function initialize(data) {
  file = data.file
}

export async function resolve(specifier, context, next) {
  const result = await next(specifier, context)
  if (!result.url.startsWith('node:')) appendFileSync(file, `${result.url}\n`)
  return result
}
