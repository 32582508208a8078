import {oclifCommand} from '../cli/base-command.js'
import definition from '../cli/definitions/doctor.js'

export default oclifCommand(definition)
