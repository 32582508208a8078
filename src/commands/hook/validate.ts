import {oclifCommand} from '../../cli/base-command.js'
import definition from '../../cli/definitions/hook-validate.js'

export default oclifCommand(definition)
