import {oclifCommand} from '../cli/base-command.js'
import definition from '../cli/definitions/list.js'

export default oclifCommand(definition)
