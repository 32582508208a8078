import {oclifCommand} from '../cli/base-command.js'
import definition from '../cli/definitions/publish.js'

export default oclifCommand(definition)
