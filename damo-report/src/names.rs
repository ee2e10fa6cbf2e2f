//! Enums of options that damo spells as words (`--style hot`, `--sortby time`): one macro
//! gives each its names, `name()` and `FromStr`, so the CLI offers exactly the library's
//! choices and a default is written once, as a variant.

/// `named_enum! { /// doc  pub enum Style { Detailed = "detailed", … } }`: the enum (Debug,
/// Clone, Copy, PartialEq, Eq, plus the derives given) with `NAMES`, `name()` and `FromStr`.
macro_rules! named_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// The names the command line takes, in the order of the variants.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            pub const fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl $crate::names::Named for $name {
            const NAMES: &'static [&'static str] = $name::NAMES;
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!("unknown {} {s:?} (one of {})", stringify!($name), $name::NAMES.join(", "))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

pub(crate) use named_enum;

/// An option word enum: the names the command line offers (each parses into a variant).
pub trait Named: std::str::FromStr<Err = String> {
    const NAMES: &'static [&'static str];
}

#[cfg(test)]
mod tests {
    named_enum! {
        /// A test enum.
        pub enum Fruit {
            Apple = "apple",
            BloodOrange = "blood-orange",
        }
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(Fruit::NAMES, ["apple", "blood-orange"]);
        for &n in Fruit::NAMES {
            assert_eq!(n.parse::<Fruit>().map(Fruit::name), Ok(n));
        }
        assert_eq!("pear".parse::<Fruit>(), Err("unknown Fruit \"pear\" (one of apple, blood-orange)".to_string()));
    }
}
