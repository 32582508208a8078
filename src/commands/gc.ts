import {oclifCommand} from '../cli/base-command.js'
import definition from '../cli/definitions/gc.js'

export default oclifCommand(definition)
