import {oclifCommand} from '../cli/base-command.js'
import definition from '../cli/definitions/rm.js'

export default oclifCommand(definition)
