import {oclifCommand} from '../../cli/base-command.js'
import definition from '../../cli/definitions/podman-configure.js'

export default oclifCommand(definition)
