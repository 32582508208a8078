/**
 * Resolve an image's `User` ("1000", "1000:100", "app", "app:staff", …) against the
 * image's own /etc/passwd and /etc/group, the way podman and docker do: a named
 * user's primary group unless one is given, plus the groups that list the user.
 */

export interface ResolvedUser {
  uid: number
  gid: number
  additionalGids: number[]
  /** From passwd, when the user is listed there. */
  home?: string
}

interface PasswdEntry {
  name: string
  uid: number
  gid: number
  home: string
}

function parsePasswd(text: string): PasswdEntry[] {
  return text
    .split('\n')
    .map((line) => line.split(':'))
    .filter((f) => f.length >= 7 && /^\d+$/.test(f[2]!) && /^\d+$/.test(f[3]!))
    .map((f) => ({name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]!}))
}

function parseGroup(text: string): {name: string; gid: number; members: string[]}[] {
  return text
    .split('\n')
    .map((line) => line.split(':'))
    .filter((f) => f.length >= 4 && /^\d+$/.test(f[2]!))
    .map((f) => ({name: f[0]!, gid: Number(f[2]), members: f[3]!.split(',').filter(Boolean)}))
}

/**
 * Resolve `user` (never empty) with the image's passwd and group files (empty
 * strings when the image has none). Throws when a name is not listed.
 */
export function resolveUser(user: string, passwdText: string, groupText: string): ResolvedUser {
  const [userPart, groupPart] = user.split(':', 2) as [string, string | undefined]
  const passwd = parsePasswd(passwdText)
  const groups = parseGroup(groupText)
  const entry = /^\d+$/.test(userPart) ? passwd.find((p) => p.uid === Number(userPart)) : passwd.find((p) => p.name === userPart)
  if (!entry && !/^\d+$/.test(userPart)) throw new Error(`user ${JSON.stringify(userPart)} is not in the image's /etc/passwd`)
  const uid = entry ? entry.uid : Number(userPart)
  let gid: number
  if (groupPart === undefined || groupPart === '') gid = entry?.gid ?? 0
  else if (/^\d+$/.test(groupPart)) gid = Number(groupPart)
  else {
    const group = groups.find((g) => g.name === groupPart)
    if (!group) throw new Error(`group ${JSON.stringify(groupPart)} is not in the image's /etc/group`)
    gid = group.gid
  }
  const additionalGids = entry ? groups.filter((g) => g.members.includes(entry.name) && g.gid !== gid).map((g) => g.gid) : []
  return {uid, gid, additionalGids, home: entry?.home}
}
