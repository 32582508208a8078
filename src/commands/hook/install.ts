import {oclifCommand} from '../../cli/base-command.js'
import definition from '../../cli/definitions/hook-install.js'

export default oclifCommand(definition)
