import {oclifCommand} from '../../cli/base-command.js'
import definition from '../../cli/definitions/hook-uninstall.js'

export default oclifCommand(definition)
