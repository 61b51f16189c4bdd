//! Numeric replies (RFC 1459, RFC 2812, and the modern client protocol's additions), by the
//! names the documents give them.

/// Welcome to the network.
pub const RPL_WELCOME: &str = "001";
/// Your host is.
pub const RPL_YOURHOST: &str = "002";
/// This server was created.
pub const RPL_CREATED: &str = "003";
/// Server name, version and modes.
pub const RPL_MYINFO: &str = "004";
/// Supported features (`RPL_ISUPPORT`).
pub const RPL_ISUPPORT: &str = "005";
/// Your user modes.
pub const RPL_UMODEIS: &str = "221";
/// Users and servers.
pub const RPL_LUSERCLIENT: &str = "251";
/// Operators online.
pub const RPL_LUSEROP: &str = "252";
/// Channels formed.
pub const RPL_LUSERCHANNELS: &str = "254";
/// Clients of this server.
pub const RPL_LUSERME: &str = "255";
/// A user is away.
pub const RPL_AWAY: &str = "301";
/// USERHOST reply.
pub const RPL_USERHOST: &str = "302";
/// ISON reply.
pub const RPL_ISON: &str = "303";
/// You are no longer away.
pub const RPL_UNAWAY: &str = "305";
/// You are away.
pub const RPL_NOWAWAY: &str = "306";
/// WHOIS: user, host, real name.
pub const RPL_WHOISUSER: &str = "311";
/// WHOIS: server.
pub const RPL_WHOISSERVER: &str = "312";
/// WHOWAS: user.
pub const RPL_WHOWASUSER: &str = "314";
/// End of WHO.
pub const RPL_ENDOFWHO: &str = "315";
/// End of WHOIS.
pub const RPL_ENDOFWHOIS: &str = "318";
/// WHOIS: channels.
pub const RPL_WHOISCHANNELS: &str = "319";
/// LIST: start.
pub const RPL_LISTSTART: &str = "321";
/// LIST: one channel.
pub const RPL_LIST: &str = "322";
/// LIST: end.
pub const RPL_LISTEND: &str = "323";
/// Channel modes.
pub const RPL_CHANNELMODEIS: &str = "324";
/// Channel creation time.
pub const RPL_CREATIONTIME: &str = "329";
/// WHOIS: logged in as.
pub const RPL_WHOISACCOUNT: &str = "330";
/// No topic set.
pub const RPL_NOTOPIC: &str = "331";
/// The topic.
pub const RPL_TOPIC: &str = "332";
/// Who set the topic, and when.
pub const RPL_TOPICWHOTIME: &str = "333";
/// WHO: one user.
pub const RPL_WHOREPLY: &str = "352";
/// NAMES: members.
pub const RPL_NAMREPLY: &str = "353";
/// End of NAMES.
pub const RPL_ENDOFNAMES: &str = "366";
/// End of ban list.
pub const RPL_ENDOFBANLIST: &str = "368";
/// End of WHOWAS.
pub const RPL_ENDOFWHOWAS: &str = "369";
/// MOTD line.
pub const RPL_MOTD: &str = "372";
/// MOTD start.
pub const RPL_MOTDSTART: &str = "375";
/// MOTD end.
pub const RPL_ENDOFMOTD: &str = "376";
/// No such nick.
pub const ERR_NOSUCHNICK: &str = "401";
/// No such channel.
pub const ERR_NOSUCHCHANNEL: &str = "403";
/// Cannot send to channel.
pub const ERR_CANNOTSENDTOCHAN: &str = "404";
/// There was no such nick.
pub const ERR_WASNOSUCHNICK: &str = "406";
/// No recipient given.
pub const ERR_NORECIPIENT: &str = "411";
/// No text to send.
pub const ERR_NOTEXTTOSEND: &str = "412";
/// Input line too long.
pub const ERR_INPUTTOOLONG: &str = "417";
/// Unknown command.
pub const ERR_UNKNOWNCOMMAND: &str = "421";
/// No MOTD.
pub const ERR_NOMOTD: &str = "422";
/// No nickname given.
pub const ERR_NONICKNAMEGIVEN: &str = "431";
/// Erroneous nickname.
pub const ERR_ERRONEUSNICKNAME: &str = "432";
/// Nickname in use.
pub const ERR_NICKNAMEINUSE: &str = "433";
/// The user is not in that channel.
pub const ERR_USERNOTINCHANNEL: &str = "441";
/// You are not in that channel.
pub const ERR_NOTONCHANNEL: &str = "442";
/// You have not registered.
pub const ERR_NOTREGISTERED: &str = "451";
/// Not enough parameters.
pub const ERR_NEEDMOREPARAMS: &str = "461";
/// You may not reregister.
pub const ERR_ALREADYREGISTERED: &str = "462";
/// Password incorrect.
pub const ERR_PASSWDMISMATCH: &str = "464";
/// Unknown mode character.
pub const ERR_UNKNOWNMODE: &str = "472";
/// You need to be identified (to a dschat account).
pub const ERR_NEEDREGGEDNICK: &str = "477";
/// You are not channel operator.
pub const ERR_CHANOPRIVSNEEDED: &str = "482";
/// Unknown user mode flag.
pub const ERR_UMODEUNKNOWNFLAG: &str = "501";
/// Cannot change mode for other users.
pub const ERR_USERSDONTMATCH: &str = "502";
/// SASL: logged in.
pub const RPL_LOGGEDIN: &str = "900";
/// SASL: succeeded.
pub const RPL_SASLSUCCESS: &str = "903";
/// SASL: failed.
pub const ERR_SASLFAIL: &str = "904";
/// SASL: message too long.
pub const ERR_SASLTOOLONG: &str = "905";
/// SASL: aborted.
pub const ERR_SASLABORTED: &str = "906";
/// SASL: already authenticated.
pub const ERR_SASLALREADY: &str = "907";
/// SASL: available mechanisms.
pub const RPL_SASLMECHS: &str = "908";
/// INVITE: the invitation was sent.
pub const RPL_INVITING: &str = "341";
/// One ban mask.
pub const RPL_BANLIST: &str = "367";
/// The user is already in the channel.
pub const ERR_USERONCHANNEL: &str = "443";
/// The channel is full (`+l`).
pub const ERR_CHANNELISFULL: &str = "471";
/// The channel is invite-only (`+i`).
pub const ERR_INVITEONLYCHAN: &str = "473";
/// You are banned (`+b`).
pub const ERR_BANNEDFROMCHAN: &str = "474";
/// Wrong channel key (`+k`).
pub const ERR_BADCHANNELKEY: &str = "475";
