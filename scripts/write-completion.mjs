#!/usr/bin/env node
// Write a bash completion for cvmfs-oci from oclif.manifest.json: command and topic
// names (`hook install`), each command's flags, the values of flags with a fixed set
// of options, files elsewhere. Static and offline — no plugin, no network, nothing run
// at completion time but bash — so the RPM ships it as
// /usr/share/bash-completion/completions/cvmfs-oci.
//
//   node scripts/write-completion.mjs [MANIFEST] [OUTPUT]   (default: ./oclif.manifest.json, stdout)
import {readFile, writeFile} from 'node:fs/promises'
import {fileURLToPath} from 'node:url'

/** Bash single-quoted word. */
const quote = (text) => `'${text.replaceAll("'", `'\\''`)}'`

/** Every flag spelling of a command: `--name`, `--no-name` where allowed, `-c`. */
function flagWords(command) {
  const words = []
  for (const flag of Object.values(command.flags ?? {})) {
    if (flag.hidden) continue
    words.push(`--${flag.name}`)
    if (flag.allowNo) words.push(`--no-${flag.name}`)
    if (flag.char) words.push(`-${flag.char}`)
  }
  return [...words, '--help']
}

/**
 * The completion script for the commands of an oclif manifest.
 *
 * @param manifest - parsed oclif.manifest.json
 * @param bin - the command name (`cvmfs-oci`)
 */
export function completionScript(manifest, bin) {
  const commands = Object.values(manifest.commands).filter((c) => !c.hidden)
  const ids = commands.map((c) => c.id).sort()
  // Every prefix of a command id is a node of the tree; its children are the next words.
  const children = new Map([['', new Set()]])
  for (const id of ids) {
    const words = id.split(':')
    for (let i = 0; i < words.length; i++) {
      const parent = words.slice(0, i).join(' ')
      if (!children.has(parent)) children.set(parent, new Set())
      children.get(parent).add(words[i])
    }
  }
  const valueFlags = new Set()
  const options = []
  for (const command of commands) {
    for (const flag of Object.values(command.flags ?? {})) {
      if (flag.type !== 'option') continue
      valueFlags.add(`--${flag.name}`)
      if (flag.char) valueFlags.add(`-${flag.char}`)
      if (flag.options?.length) options.push([`${command.id.replaceAll(':', ' ')} --${flag.name}`, flag.options])
    }
  }
  const fn = `_${bin.replace(/[^A-Za-z0-9]/g, '_')}`
  const cases = (entries) => entries.map(([key, words]) => `    ${quote(key)}) echo ${quote(words.join(' '))} ;;`).join('\n')
  return `# bash completion for ${bin}. Generated from oclif.manifest.json by scripts/write-completion.mjs: do not edit.

# The words that may follow a command prefix ('' is the top level).
${fn}_children() {
  case "$1" in
${cases([...children].map(([parent, words]) => [parent, [...words].sort()]))}
  esac
}

# The flags of a command.
${fn}_flags() {
  case "$1" in
${cases(commands.map((c) => [c.id.replaceAll(':', ' '), flagWords(c)]))}
  esac
}

# The values of a flag with a fixed set ("COMMAND --flag").
${fn}_values() {
  case "$1" in
${cases(options)}
  esac
}

# Flags that take a value: the word after one is no command word.
${fn}_value_flags=${quote(` ${[...valueFlags].sort().join(' ')} `)}

# COMPREPLY: the words of $1 that begin with $2; file names when $1 is empty.
${fn}_reply() {
  if [[ -n $1 ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$1" -- "$2")
  else
    compopt -o default 2>/dev/null
  fi
}

${fn}() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]}
  local command='' word i skip=0
  COMPREPLY=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=\${COMP_WORDS[i]}
    if ((skip)); then skip=0; continue; fi
    if [[ $word == -* ]]; then
      [[ $word != *=* && \$${fn}_value_flags == *" $word "* ]] && skip=1
      continue
    fi
    # The longest run of words that names a command or a topic.
    if [[ " $(${fn}_children "$command") " == *" $word "* ]]; then
      command=\${command:+$command }$word
    else
      break
    fi
  done
  if ((skip)); then
    ${fn}_reply "$(${fn}_values "$command $prev")" "$cur"
  elif [[ $cur == -* ]]; then
    ${fn}_reply "$([[ -n $command ]] && ${fn}_flags "$command" || echo '--help --version')" "$cur"
  else
    ${fn}_reply "$(${fn}_children "$command")" "$cur"
  fi
  return 0
}
complete -F ${fn} ${bin}
`
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [manifestPath = 'oclif.manifest.json', output] = process.argv.slice(2)
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8'))
  const script = completionScript(manifest, 'cvmfs-oci')
  if (output) await writeFile(output, script)
  else process.stdout.write(script)
}
