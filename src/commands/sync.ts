import {oclifCommand} from '../cli/base-command.js'
import definition from '../cli/definitions/sync.js'

export default oclifCommand(definition)
